# Sample firmware boot.py: runs first on the device; keep it tiny.
import micropython

micropython.alloc_emergency_exception_buf(100)
