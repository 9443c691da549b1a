"""A step's process tree in a Windows Job Object, so a timeout kills grandchildren too (#19).

`taskkill /T` walks the tree by parent process id, which misses a grandchild whose parent has
already exited (its parent id then names nobody) and may name a new, unrelated process after
the id is reused. A Job Object holds every process the child starts (children join their
parent's job), and `TerminateJobObject` ends them all. The child is created suspended and
resumed only once it is in the job, so it cannot start anything outside it. With
JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE the tree also dies if the agent itself dies mid-step; a
step that ends normally gets the limit lifted before the handle closes, so a program it
deliberately left running (as before) keeps running. Jobs nest since Windows 8 / Server 2012,
so this works inside the job Task Scheduler runs the agent in.
https://learn.microsoft.com/en-us/windows/win32/procthread/job-objects
https://learn.microsoft.com/en-us/windows/win32/api/jobapi2/nf-jobapi2-assignprocesstojobobject
https://learn.microsoft.com/en-us/windows/win32/api/winnt/ns-winnt-jobobject_basic_limit_information
https://learn.microsoft.com/en-us/windows/win32/procthread/nested-jobs
https://learn.microsoft.com/en-us/windows/win32/api/processthreadsapi/nf-processthreadsapi-resumethread
https://learn.microsoft.com/en-us/windows/win32/api/tlhelp32/nf-tlhelp32-createtoolhelp32snapshot
"""

from __future__ import annotations

import ctypes
from ctypes import wintypes

CREATE_SUSPENDED = 0x4
KILL_ON_JOB_CLOSE = 0x2000
_EXTENDED_LIMIT_INFORMATION = 9
_PROCESS_TERMINATE, _PROCESS_SET_QUOTA = 0x0001, 0x0100
_THREAD_SUSPEND_RESUME = 0x0002
_SNAPTHREAD = 0x4
_INVALID = ctypes.c_void_p(-1).value


class _Basic(ctypes.Structure):
    _fields_ = [
        ("PerProcessUserTimeLimit", ctypes.c_int64),
        ("PerJobUserTimeLimit", ctypes.c_int64),
        ("LimitFlags", wintypes.DWORD),
        ("MinimumWorkingSetSize", ctypes.c_size_t),
        ("MaximumWorkingSetSize", ctypes.c_size_t),
        ("ActiveProcessLimit", wintypes.DWORD),
        ("Affinity", ctypes.c_size_t),
        ("PriorityClass", wintypes.DWORD),
        ("SchedulingClass", wintypes.DWORD),
    ]


class _Extended(ctypes.Structure):
    _fields_ = [
        ("BasicLimitInformation", _Basic),
        ("IoInfo", ctypes.c_uint64 * 6),
        ("ProcessMemoryLimit", ctypes.c_size_t),
        ("JobMemoryLimit", ctypes.c_size_t),
        ("PeakProcessMemoryUsed", ctypes.c_size_t),
        ("PeakJobMemoryUsed", ctypes.c_size_t),
    ]


class _ThreadEntry(ctypes.Structure):
    _fields_ = [
        ("dwSize", wintypes.DWORD),
        ("cntUsage", wintypes.DWORD),
        ("th32ThreadID", wintypes.DWORD),
        ("th32OwnerProcessID", wintypes.DWORD),
        ("tpBasePri", wintypes.LONG),
        ("tpDeltaPri", wintypes.LONG),
        ("dwFlags", wintypes.DWORD),
    ]


def _kernel32() -> ctypes.WinDLL:  # type: ignore[name-defined]
    k = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    k.CreateJobObjectW.restype = wintypes.HANDLE
    k.CreateJobObjectW.argtypes = [wintypes.LPVOID, wintypes.LPCWSTR]
    k.SetInformationJobObject.argtypes = [wintypes.HANDLE, ctypes.c_int, wintypes.LPVOID]
    k.SetInformationJobObject.argtypes += [wintypes.DWORD]
    k.AssignProcessToJobObject.argtypes = [wintypes.HANDLE, wintypes.HANDLE]
    k.TerminateJobObject.argtypes = [wintypes.HANDLE, wintypes.UINT]
    k.OpenProcess.restype = wintypes.HANDLE
    k.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    k.OpenThread.restype = wintypes.HANDLE
    k.OpenThread.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    k.ResumeThread.restype = wintypes.DWORD
    k.ResumeThread.argtypes = [wintypes.HANDLE]
    k.CreateToolhelp32Snapshot.restype = wintypes.HANDLE
    k.CreateToolhelp32Snapshot.argtypes = [wintypes.DWORD, wintypes.DWORD]
    k.Thread32First.argtypes = [wintypes.HANDLE, ctypes.POINTER(_ThreadEntry)]
    k.Thread32Next.argtypes = [wintypes.HANDLE, ctypes.POINTER(_ThreadEntry)]
    k.CloseHandle.argtypes = [wintypes.HANDLE]
    return k


def _fail(what: str) -> OSError:
    code = ctypes.get_last_error()  # type: ignore[attr-defined]
    return OSError(f"{what} failed: Windows error {code}")


class Job:
    """A Job Object that kills its processes when closed, unless `release`d first."""

    def __init__(self) -> None:
        self._k = _kernel32()
        handle = self._k.CreateJobObjectW(None, None)
        if not handle:
            raise _fail("CreateJobObject")
        self.handle = handle
        try:
            self._limit(KILL_ON_JOB_CLOSE)
        except OSError:
            self.close()
            raise

    def _limit(self, flags: int) -> None:
        info = _Extended()
        info.BasicLimitInformation.LimitFlags = flags
        size = ctypes.sizeof(info)
        ok = self._k.SetInformationJobObject(
            self.handle, _EXTENDED_LIMIT_INFORMATION, ctypes.byref(info), size
        )
        if not ok:
            raise _fail("SetInformationJobObject")

    def adopt(self, pid: int) -> None:
        """Put a process created suspended into the job, then resume it (in any case)."""
        try:
            process = self._k.OpenProcess(_PROCESS_TERMINATE | _PROCESS_SET_QUOTA, False, pid)
            if not process:
                raise _fail("OpenProcess")
            try:
                if not self._k.AssignProcessToJobObject(self.handle, process):
                    raise _fail("AssignProcessToJobObject")
            finally:
                self._k.CloseHandle(process)
        finally:
            resume_process(pid, self._k)

    def terminate(self, exit_code: int = 1) -> None:
        if not self._k.TerminateJobObject(self.handle, exit_code):
            raise _fail("TerminateJobObject")

    def release(self) -> None:
        """Close the handle, leaving processes that still run (the step ended normally)."""
        try:
            self._limit(0)
        finally:
            self.close()

    def close(self) -> None:
        """Close the handle: with KILL_ON_JOB_CLOSE still set, every process in it ends."""
        if self.handle:
            self._k.CloseHandle(self.handle)
            self.handle = None


def resume_process(pid: int, k: ctypes.WinDLL | None = None) -> int:  # type: ignore[name-defined]
    """Resume the threads of a process created with CREATE_SUSPENDED; how many were resumed."""
    k = k or _kernel32()
    snapshot = k.CreateToolhelp32Snapshot(_SNAPTHREAD, 0)
    if snapshot in (None, _INVALID):
        raise _fail("CreateToolhelp32Snapshot")
    resumed = 0
    try:
        entry = _ThreadEntry()
        entry.dwSize = ctypes.sizeof(entry)
        more = k.Thread32First(snapshot, ctypes.byref(entry))
        while more:
            if entry.th32OwnerProcessID == pid:
                thread = k.OpenThread(_THREAD_SUSPEND_RESUME, False, entry.th32ThreadID)
                if thread:
                    if k.ResumeThread(thread) != 0xFFFFFFFF:
                        resumed += 1
                    k.CloseHandle(thread)
            more = k.Thread32Next(snapshot, ctypes.byref(entry))
    finally:
        k.CloseHandle(snapshot)
    return resumed
