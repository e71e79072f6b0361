"""The nbgrader course's kernel client (minifrcnn/course/kernel_client.py): it returns a message that is
there at once, one that arrives while it waits as soon as it arrives, and raises Empty when the timeout
ends, as jupyter_client's own channel does, only polling in slices."""
import asyncio
import time
from queue import Empty

import pytest
import zmq
import zmq.asyncio
from jupyter_client.session import Session

from minifrcnn.course.kernel_client import POLL_SLICE_S, SteadyAsyncKernelClient, SteadyChannel


@pytest.fixture
def pair():
    context = zmq.asyncio.Context()
    kernel, client = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    port = kernel.bind_to_random_port("tcp://127.0.0.1")
    client.connect(f"tcp://127.0.0.1:{port}")
    session = Session()
    yield session, kernel, SteadyChannel(client, session)
    kernel.close(linger=0)
    client.close(linger=0)
    context.term()


def test_a_message_that_is_there_or_arrives_is_returned_and_none_raises_empty(pair):
    session, kernel, channel = pair

    async def scenario():
        session.send(kernel, "execute_reply", {"status": "ok"})
        first = await channel.get_msg(timeout=5)
        asyncio.get_running_loop().call_later(0.3, lambda: session.send(kernel, "execute_reply", {"status": "ok"}))
        start = time.monotonic()
        second = await channel.get_msg(timeout=30)
        waited_for_second = time.monotonic() - start
        start = time.monotonic()
        with pytest.raises(Empty):
            await channel.get_msg(timeout=0.35)
        return first, second, waited_for_second, time.monotonic() - start

    first, second, waited_for_second, waited_for_none = asyncio.run(scenario())
    assert first["msg_type"] == second["msg_type"] == "execute_reply" and second["content"] == {"status": "ok"}
    assert 0.25 < waited_for_second < 0.3 + 5 * POLL_SLICE_S
    assert 0.35 <= waited_for_none < 0.35 + 5 * POLL_SLICE_S


def test_every_channel_that_waits_for_messages_polls_in_slices():
    for name in ("shell", "iopub", "stdin", "control"):
        assert SteadyAsyncKernelClient.class_traits()[f"{name}_channel_class"].default_value is SteadyChannel
