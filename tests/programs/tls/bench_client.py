"""TLS benchmark client (Python, http.client over one keep-alive connection).

Usage: bench_client.py PORT CAFILE upload MB | ping N
Prints one line: `upload <MB> <seconds> <MB/s> <cpu seconds>` or
`ping <N> <seconds> <us/request> <cpu seconds>`; cpu seconds: this process's user + system time
over the timed part.
"""

import http.client
import ssl
import sys
import time

port, ca, mode, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
conn = http.client.HTTPSConnection("localhost", port, context=ctx, blocksize=1 << 16)
conn.request("GET", "/ping")  # handshake outside the timed part
conn.getresponse().read()


class Zeros:
    def __init__(self, size):
        self.left = size
        self.block = b"\0" * (1 << 16)

    def read(self, k=-1):
        k = min(self.left, len(self.block) if k < 0 else k)
        self.left -= k
        return self.block[:k]


t = time.perf_counter()
cpu = time.process_time()
if mode == "upload":
    size = n << 20
    conn.request("POST", "/upload", body=Zeros(size), headers={"Content-Length": str(size)})
    body = conn.getresponse().read()
    assert str(size).encode() in body, body
    dt = time.perf_counter() - t
    print(f"upload {n} {dt:.3f} {n / dt:.1f} {time.process_time() - cpu:.4f}")
else:
    for _ in range(n):
        conn.request("GET", "/ping")
        conn.getresponse().read()
    dt = time.perf_counter() - t
    print(f"ping {n} {dt:.3f} {dt / n * 1e6:.1f} {time.process_time() - cpu:.4f}")
