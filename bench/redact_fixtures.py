"""Writes the files the redacted-read benchmarks read (bench/redact.sh, bench/redact_callgrind.sh)
into DIR, from a fixed seed, so both measure the same bytes:
clean4k.txt, clean64k.txt (source-like text without detector keywords), keywords4k.txt (with
keywords, no secret), .env (4 KiB of settings with a password and a token) and notes.md (a
note no rule names, with a pasted token: redacted by content detection).

Usage: python3 bench/redact_fixtures.py DIR
"""
import random
import string
import sys

p = sys.argv[1]
random.seed(5)
words = ["let", "value", "count", "buffer", "render", "index", "parse", "item", "result", "offset"]
alnum = string.ascii_letters + string.digits


def text(n, extra=""):
    out = []
    while sum(map(len, out)) < n:
        out.append(" ".join(random.choice(words) for _ in range(8)) + extra + "\n")
    return "".join(out)[:n]


def token(n):
    return "".join(random.choice(alnum) for _ in range(n))


open(f"{p}/clean4k.txt", "w").write(text(4096))
open(f"{p}/clean64k.txt", "w").write(text(65536))
open(f"{p}/keywords4k.txt", "w").write(text(4096, " token password secret"))
env = ["# settings"] + [f"SETTING_{i}=value{i}" for i in range(150)]
env += ["DB_PASSWORD=" + token(24), "API_TOKEN=ghp_" + token(36)]
open(f"{p}/.env", "w").write((("\n".join(env) + "\n") * 4)[:4096])
open(f"{p}/notes.md", "w").write(text(4000) + "\nthe bot uses ghp_" + token(36) + "\n")
