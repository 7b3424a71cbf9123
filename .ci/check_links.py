#!/usr/bin/env python3
"""Check every local Markdown link (file and #anchor, GitHub-style anchors) in README.md and docs/*.md.

    python3 .ci/check_links.py [REPO_ROOT]
"""
import os, re, sys, glob
root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
files = [os.path.join(root, 'README.md')] + sorted(glob.glob(os.path.join(root, 'docs', '*.md')))

def strip_code(text):
    out, fence = [], False
    for line in text.split('\n'):
        if re.match(r'^\s*(```|~~~)', line):
            fence = not fence; out.append(''); continue
        out.append('' if fence else line)
    return out

def anchors(path):
    seen, result = {}, set()
    for line in strip_code(open(path).read()):
        m = re.match(r'^(#{1,6})\s+(.*?)\s*#*\s*$', line)
        if not m: continue
        h = m.group(2)
        h = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', h)       # links -> text
        h = h.lower()
        h = re.sub(r'[^\w\- ]', '', h)                          # GitHub: drop punctuation (keeps _ and -)
        h = h.replace(' ', '-')
        n = seen.get(h, 0); seen[h] = n + 1
        result.add(h if n == 0 else f'{h}-{n}')
    # explicit <a name=..> / id=..
    for m in re.finditer(r'<a\s+(?:name|id)="([^"]+)"', open(path).read()):
        result.add(m.group(1))
    return result

bad = total = 0
for f in files:
    lines = strip_code(open(f).read())
    for i, line in enumerate(lines, 1):
        line = re.sub(r'`[^`]*`', '', line)                    # inline code is not a link
        for m in re.finditer(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)', line):
            target = m.group(1)
            if re.match(r'^[a-z]+:', target): continue          # http:, https:, mailto:
            total += 1
            path, _, anchor = target.partition('#')
            dest = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
            if not os.path.exists(dest):
                print(f'{f}:{i}: missing file {target}'); bad += 1; continue
            if anchor:
                if not dest.endswith('.md'):
                    print(f'{f}:{i}: anchor on non-markdown {target}'); bad += 1; continue
                if anchor not in anchors(dest):
                    print(f'{f}:{i}: missing anchor {target}'); bad += 1
print(f'{total} local links checked in {len(files)} files, {bad} broken')
sys.exit(1 if bad else 0)
