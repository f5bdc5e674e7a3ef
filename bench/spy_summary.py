"""Summarise a py-spy ``record -f raw`` (collapsed stacks) file: where the samples went.

    python bench/spy_summary.py profile.txt [--top 25] [--match hooknb]

Prints per-thread sample shares, then the top functions by *inclusive* share (a function is
counted once per sample it appears in) and by *self* share (the leaf frame).
"""

from __future__ import annotations

import argparse
import collections
import re


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="only functions whose frame contains this")
    parser.add_argument("--thread", default="", help="only samples of threads containing this")
    args = parser.parse_args()

    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    with open(args.file, encoding="utf-8", errors="replace", newline="\n") as handle:
        for line in handle:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else "?"
            if args.thread and args.thread not in thread:
                continue
            threads[re.sub(r" \(idle\)", "", thread)] += count
            total += count
            seen = set()
            for frame in frames[1:]:
                name = re.sub(r"\s+\(/[^)]*/(site-packages|lib/python3\.\d+)/", " (", frame)
                if name in seen:
                    continue
                seen.add(name)
                inclusive[name] += count
            if len(frames) > 1:
                leaf[
                    re.sub(r"\s+\(/[^)]*/(site-packages|lib/python3\.\d+)/", " (", frames[-1])
                ] += count
    print(f"{total} samples")
    for thread, count in threads.most_common():
        print(f"  {100 * count / total:5.1f}%  {thread}")
    print("\ninclusive:")
    for name, count in inclusive.most_common():
        if args.match in name:
            print(f"  {100 * count / total:5.1f}%  {name}")
            args.top -= 1
            if args.top <= 0:
                break
    print("\nself (leaf):")
    for name, count in leaf.most_common(25):
        print(f"  {100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
