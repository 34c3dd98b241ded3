"""The logical device: VkDevice, one compute queue, and completion tracking of submissions.

A submission signals either a value of one device-wide timeline semaphore (Vulkan 1.2 core)
or, where timelines are missing (or ``?sync=fence`` asks for it), a VkFence. A completion
thread waits for submissions in order and runs their completion (which signals hal
semaphores); a host thread waiting on a hal semaphore without a timeout runs that wait itself
through :meth:`Semaphore.offer`, which saves a thread hand-off per call.

The VkDevice outlives ``close()`` while buffers allocated from it are alive (a caller may hold
numpy views of mapped memory): it is destroyed when the last allocation is freed.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

from hal_core.errors import HalRuntimeError
from hal_vulkan.driver.instance import check, result_name

log = logging.getLogger(__name__)

_WAIT_SLICE_NS = 200_000_000  # the completion thread re-checks for shutdown this often
_U64_MAX = 0xFFFFFFFFFFFFFFFF


class Pending:
    """One GPU submission: what to run once it completes (exactly once)."""

    __slots__ = ("complete_fn", "context", "done", "fence", "keep", "lock", "value")

    def __init__(self, context: LogicalDevice, value: int, fence: Any,
                 complete_fn: Callable[[BaseException | None], None], keep: Any) -> None:
        self.context = context
        self.value = value
        self.fence = fence
        self.complete_fn = complete_fn
        self.keep = keep  # buffers, command buffers: alive until the GPU is done with them
        self.done = False
        self.lock = threading.Lock()

    def wait(self, timeout_ns: int = _U64_MAX) -> bool:
        return self.context.wait_pending(self, timeout_ns)

    def finish(self, error: BaseException | None = None) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
        self.context.recycle(self)
        try:
            self.complete_fn(error)
        except Exception:  # noqa: BLE001 - a completion must never kill the completion thread
            log.exception("vulkan submission completion raised")
        self.keep = None

    def run_on_host(self) -> None:
        """Wait for the GPU on the calling thread and complete (Semaphore.offer's runner).

        Earlier submissions are completed first, in order: a semaphore signalled by several
        submissions must see their values in increasing order.
        """
        if self.done:
            return
        try:
            ok = self.wait()
        except HalRuntimeError as e:
            self.context.finish_until(self, e)
            return
        if ok:
            self.context.finish_until(self)


class LogicalDevice:
    def __init__(self, physical: Any, use_timeline: bool) -> None:
        instance = physical.instance
        vk, ffi, lib = self.vk, self.ffi, self.lib = instance.vk, instance.ffi, instance.lib
        self.physical = physical
        self.instance = instance
        family = physical.compute_queue_family()
        if family is None:
            raise HalRuntimeError(f"Vulkan device {physical.name!r} has no compute queue")
        self.queue_family = family
        priority = ffi.new("float[]", [1.0])
        queue_info = ffi.new("VkDeviceQueueCreateInfo*", {
            "sType": vk.VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, "queueFamilyIndex": family,
            "queueCount": 1, "pQueuePriorities": priority})
        head, keep = physical.enabled_feature_chain()
        wanted = [e for e in ("VK_KHR_timeline_semaphore",) if e in physical.extensions
                  and physical.api_version < (1 << 22 | 2 << 12)]
        if not physical.timeline_semaphores:
            use_timeline = False
        ext_names = [ffi.new("char[]", e.encode()) for e in wanted]
        ext_ptrs = ffi.new("char*[]", ext_names)
        fields = {"sType": vk.VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, "queueCreateInfoCount": 1,
                  "pQueueCreateInfos": queue_info, "enabledExtensionCount": len(wanted),
                  "ppEnabledExtensionNames": ext_ptrs}
        if ffi.typeof(head) == ffi.typeof("VkPhysicalDeviceFeatures2*"):
            fields["pNext"] = ffi.cast("void*", head)
        else:
            fields["pEnabledFeatures"] = head
        info = ffi.new("VkDeviceCreateInfo*", fields)
        handle = ffi.new("VkDevice*")
        check(vk, lib.vkCreateDevice(physical.handle, info, ffi.NULL, handle), "vkCreateDevice")
        del keep
        self.handle = handle[0]
        queue = ffi.new("VkQueue*")
        lib.vkGetDeviceQueue(self.handle, family, 0, queue)
        self.queue = queue[0]
        self.queue_lock = threading.Lock()
        self.use_timeline = use_timeline
        # With update-after-bind, a recorded command buffer survives descriptor updates, so
        # binding tables cost one vkUpdateDescriptorSets per submission instead of a re-record.
        self.update_after_bind = bool(
            physical.features.get("descriptorBindingStorageBufferUpdateAfterBind"))
        self.validation_mark = len(instance.validation_errors)
        # Live VkDeviceMemory allocations; the VkDevice is destroyed when closed and none left.
        self._live = 0
        self._live_lock = threading.Lock()
        self._closing = False
        self.destroyed = False
        self._destroying = False
        self._destroy_hooks: list[Callable[[], None]] = []
        self._pending: collections.deque[Pending] = collections.deque()
        self._cond = threading.Condition()
        self._finish_lock = threading.RLock()
        self._stop = False
        self._fences: list[Any] = []
        self._value = 0
        if use_timeline:
            type_info = ffi.new("VkSemaphoreTypeCreateInfo*", {
                "sType": vk.VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO,
                "semaphoreType": vk.VK_SEMAPHORE_TYPE_TIMELINE, "initialValue": 0})
            sem_info = ffi.new("VkSemaphoreCreateInfo*", {
                "sType": vk.VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO, "pNext": ffi.cast("void*", type_info)})
            sem = ffi.new("VkSemaphore*")
            check(vk, lib.vkCreateSemaphore(self.handle, sem_info, ffi.NULL, sem),
                  "vkCreateSemaphore (timeline)")
            self.timeline = sem[0]
            self._wait_sems = ffi.new("VkSemaphore[1]", [self.timeline])
        else:
            self.timeline = None
        # Prebuilt submit structs (the hot path builds nothing per call).
        self._signal_value = ffi.new("uint64_t[1]")
        self._timeline_info = ffi.new("VkTimelineSemaphoreSubmitInfo*", {
            "sType": vk.VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO,
            "signalSemaphoreValueCount": 1, "pSignalSemaphoreValues": self._signal_value})
        self._signal_sems = ffi.new("VkSemaphore[1]", [self.timeline] if use_timeline else None)
        self._submit_cbs = ffi.new("VkCommandBuffer[64]")
        self._submit = ffi.new("VkSubmitInfo*", {
            "sType": vk.VK_STRUCTURE_TYPE_SUBMIT_INFO, "pCommandBuffers": self._submit_cbs,
            "pNext": ffi.cast("void*", self._timeline_info) if use_timeline else ffi.NULL,
            "signalSemaphoreCount": 1 if use_timeline else 0,
            "pSignalSemaphores": self._signal_sems if use_timeline else ffi.NULL})
        self._thread = threading.Thread(target=self._complete_loop, name="hal-vulkan-completion",
                                        daemon=True)
        self._thread.start()

    # -- allocation accounting ----------------------------------------------------------------

    def allocation_added(self) -> None:
        with self._live_lock:
            self._live += 1

    def allocation_freed(self) -> None:
        with self._live_lock:
            self._live -= 1
            last = self._closing and self._live == 0
        if last:
            self._destroy()

    def on_destroy(self, hook: Callable[[], None]) -> None:
        self._destroy_hooks.append(hook)

    # -- submission ---------------------------------------------------------------------------

    def submit(self, command_buffers: list[Any], complete: Callable[[BaseException | None], None],
               keep: Any) -> Pending:
        """Submit VkCommandBuffers; ``complete`` runs once the GPU finished them (or failed)."""
        vk, ffi, lib = self.vk, self.ffi, self.lib
        n = len(command_buffers)
        if n > 64:
            raise HalRuntimeError("at most 64 command buffers per submission")
        with self.queue_lock:
            for i, cb in enumerate(command_buffers):
                self._submit_cbs[i] = cb
            self._submit.commandBufferCount = n
            fence = ffi.NULL
            if self.use_timeline:
                self._value += 1
                self._signal_value[0] = self._value
            else:
                fence = self._fence()
            code = lib.vkQueueSubmit(self.queue, 1, self._submit, fence)
            if code != 0:
                if fence != ffi.NULL:
                    self._fences.append(fence)
                raise HalRuntimeError(f"vkQueueSubmit failed: {result_name(vk, code)}")
            pending = Pending(self, self._value, fence, complete, keep)
        with self._cond:
            self._pending.append(pending)
            self._cond.notify()
        return pending

    def _fence(self) -> Any:
        if self._fences:
            fence = self._fences.pop()
            self.lib.vkResetFences(self.handle, 1, self.ffi.new("VkFence[1]", [fence]))
            return fence
        info = self.ffi.new("VkFenceCreateInfo*", {"sType": self.vk.VK_STRUCTURE_TYPE_FENCE_CREATE_INFO})
        out = self.ffi.new("VkFence*")
        check(self.vk, self.lib.vkCreateFence(self.handle, info, self.ffi.NULL, out), "vkCreateFence")
        return out[0]

    def recycle(self, pending: Pending) -> None:
        if pending.fence is not None and pending.fence != self.ffi.NULL:
            with self.queue_lock:
                self._fences.append(pending.fence)
            pending.fence = None

    def wait_pending(self, pending: Pending, timeout_ns: int) -> bool:
        """True once ``pending`` finished on the GPU; False on timeout; raises on device loss."""
        vk, ffi, lib = self.vk, self.ffi, self.lib
        if self.use_timeline:
            values = ffi.new("uint64_t[1]", [pending.value])
            info = ffi.new("VkSemaphoreWaitInfo*", {
                "sType": vk.VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO, "semaphoreCount": 1,
                "pSemaphores": self._wait_sems, "pValues": values})
            code = lib.vkWaitSemaphores(self.handle, info, timeout_ns)
        else:
            fence = pending.fence
            if fence is None:
                return True  # recycled: it completed
            code = lib.vkWaitForFences(self.handle, 1, ffi.new("VkFence[1]", [fence]), 1,
                                       timeout_ns)
        if code == vk.VK_TIMEOUT:
            return False
        if code != 0:
            raise HalRuntimeError(f"waiting for a Vulkan submission failed: "
                                  f"{result_name(vk, code)}")
        return True

    def finish_until(self, target: Pending, error: BaseException | None = None) -> None:
        """Complete every submission up to ``target`` in submission order (``error``: how
        ``target`` failed). The completion thread and host waiters both come through here."""
        with self._finish_lock:
            if target.done:
                return
            while True:
                with self._cond:
                    if not self._pending:
                        return
                    head = self._pending[0]
                failure = error if head is target else None
                if head is not target and not head.done:
                    try:
                        head.wait()  # an earlier submission: done, or about to be
                    except HalRuntimeError as e:
                        failure = e
                head.finish(failure)
                with self._cond:
                    if self._pending and self._pending[0] is head:
                        self._pending.popleft()
                    self._cond.notify_all()
                if head is target:
                    return

    def _complete_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait()
                if not self._pending:
                    return
                pending = self._pending[0]
            try:
                ok = pending.done or pending.wait(_WAIT_SLICE_NS)
            except HalRuntimeError as e:
                self.finish_until(pending, e)
                continue
            if ok:
                self.finish_until(pending)
                with self._cond:  # a host waiter may have finished it already
                    if self._pending and self._pending[0] is pending and pending.done:
                        self._pending.popleft()
                        self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending, timeout)

    def validation_failures(self) -> list[str]:
        return self.instance.validation_errors[self.validation_mark:]

    # -- teardown -----------------------------------------------------------------------------

    def close(self) -> None:
        if self._closing:
            return
        if not self.wait_idle(30.0):
            log.warning("vulkan device closed with submissions still running")
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(5.0)
        with self._live_lock:
            self._closing = True
            last = self._live == 0
        if last:
            self._destroy()

    def _destroy(self) -> None:
        with self._live_lock:
            if self._destroying:
                return
            self._destroying = True
        ffi, lib = self.ffi, self.lib
        lib.vkDeviceWaitIdle(self.handle)
        for hook in reversed(self._destroy_hooks):
            try:
                hook()
            except Exception:  # noqa: BLE001 - keep tearing down
                log.exception("vulkan teardown hook raised")
        self.destroyed = True
        for fence in self._fences:
            lib.vkDestroyFence(self.handle, fence, ffi.NULL)
        if self.timeline is not None:
            lib.vkDestroySemaphore(self.handle, self.timeline, ffi.NULL)
        lib.vkDestroyDevice(self.handle, ffi.NULL)
