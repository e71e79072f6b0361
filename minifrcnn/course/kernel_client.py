"""A kernel client that notices a kernel's reply within a tenth of a second (nbgrader's autograder).

jupyter_client's asyncio client waits for a message with one ``socket.poll(timeout)``. That poll can
miss the wake-up of a message that has already arrived, most often the reply to a cell that has just
sent many widget messages (an explorer); it then returns only when its timeout ends, with the message.
nbclient waits for every cell's reply with the whole cell timeout (600 s for the lessons), so one
missed wake-up stalled the autograding of lesson 01 for ten minutes (1 in 5 to 10 runs on the course's
2-core CPU, ipykernel 6.31 and 7.4, pyzmq 26.4 and 27.3 alike). :class:`SteadyAsyncKernelClient` polls
in slices of :data:`POLL_SLICE_S`: each slice ends with a real ``zmq_poll``, which finds a message
that is there, so a missed wake-up costs at most one slice. The messages, their order and the
timeouts are unchanged.

The nbgrader course's ``nbgrader_config.py`` selects it (``minifrcnn.course.nbgrader_course``).
The course's own runs (``editions.notebook_client``) use the blocking client, whose polls do not
have this problem.
"""
import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from traitlets import Type

POLL_SLICE_S = 0.1


class SteadyChannel(AsyncZMQSocketChannel):
    """``AsyncZMQSocketChannel`` whose ``get_msg(timeout)`` polls in slices of :data:`POLL_SLICE_S`."""

    async def get_msg(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_SLICE_S if deadline is None else min(POLL_SLICE_S, deadline - time.monotonic())
            if await self.socket.poll(max(1, int(left * 1000))):
                return await self._recv()
            if deadline is not None and time.monotonic() >= deadline:
                raise Empty


class SteadyAsyncKernelClient(AsyncKernelClient):
    """``AsyncKernelClient`` with :class:`SteadyChannel` for the shell, iopub, stdin and control channels."""

    shell_channel_class = Type(SteadyChannel)
    iopub_channel_class = Type(SteadyChannel)
    stdin_channel_class = Type(SteadyChannel)
    control_channel_class = Type(SteadyChannel)
