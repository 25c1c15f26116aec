# Myotone firmware package.
VERSION = "0.1.0"
PROTOCOL = 1
