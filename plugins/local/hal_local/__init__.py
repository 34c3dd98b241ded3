"""The host CPU drivers: local-sync (inline) and local-task (worker pool).

Both share one device (``device.py``), one command buffer (``command_buffer.py``) and the CPU
queries (``cpu.py``); they differ only in where submissions run and how a dispatch's
workgroups are spread (``sync.py``, ``task.py``).
"""
