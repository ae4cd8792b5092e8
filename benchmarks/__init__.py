"""genevent's benchmark suite: ``python -m benchmarks [--quick] [--json FILE] [--only SUBSTRING]``.

Measures genevent (asyncio and thread runtimes) side by side with bare baselines (plain loop,
deque mailbox, asyncio.Queue, queue.SimpleQueue), with pykka, pyee and blinker where they have an
equivalent, and with OTP's own gen_event when ``escript`` is on the PATH. Every figure is printed
with its ratio to the scenario's baseline measured in the same run; a final section says which
of the project's performance targets were met.
"""
