"""The local HAL implementation shared by every host-CPU driver (as IREE's ``hal/local/``).

* :mod:`.executable` - :class:`LocalExecutable` and :class:`ExecutableLoader`: the local
  dispatch ABI (array and address modes) that executable loaders implement;
* :mod:`.executable_cache` - :class:`LoaderExecutableCache`: prepares payloads through the
  loaders plugins register (probes honoured);
* :mod:`.command_buffer` - :class:`LocalCommandBuffer` and its step builders (also used by the
  inline execution model);
* :mod:`.device` - :class:`LocalDevice` / :class:`LocalDriver`: queue operations as
  submissions released by semaphores, host memory, queue_read/queue_write;
  :class:`InlineLocalDevice` runs them inline (local-sync);
* :mod:`.pooled_device` - :class:`PooledLocalDevice`: submissions on a worker pool, dispatches
  split into one tile per worker (local-task);
* :mod:`.worker_pool` - :class:`WorkerPool`: threads and a dispatch's tiles spread over them;
* :mod:`.cpu` - what the host CPU is (architecture, features in LLVM's spelling, cores).

``plugins/local`` registers the two drivers built from these (local-sync, local-task). A third
party's host-memory device (an accelerator simulator, a device-only-memory test driver)
subclasses :class:`LocalDevice` the same way. Importing this package imports nothing heavy.
"""
