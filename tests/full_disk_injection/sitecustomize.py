"""A full disk where the tests cannot mount a small tmpfs (not root): loaded into the processes a test
starts (through PYTHONPATH), it makes ``os.write`` (what labrun appends journal and store lines with) to files
under ``$LABRUN_TEST_FULL_DISK`` behave as on a disk with ``$LABRUN_TEST_FULL_DISK_FREE`` bytes left: a
write past that is taken in part, the next one fails with ENOSPC. Removing the folder's ``ballast`` file
gives the space back, as on the tmpfs the tests use otherwise.
"""

import errno
import os

_folder = os.environ.get("LABRUN_TEST_FULL_DISK")
if _folder:
    _real_write = os.write
    _left = [int(os.environ.get("LABRUN_TEST_FULL_DISK_FREE", "0"))]

    def _write(fd, data):
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = ""
        if not path.startswith(_folder + os.sep) or not os.path.exists(os.path.join(_folder, "ballast")):
            return _real_write(fd, data)
        if _left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = _real_write(fd, memoryview(data)[:_left[0]])
        _left[0] -= written
        return written

    os.write = _write
