#!/usr/bin/env bash
# test_layers.sh — the rooms of core/ keep their promises (README, Layout):
#   - core/protocol/ is sans-I/O: no socket, epoll, thread or clock call, and
#     no header of the driver or of the configuration room but log.h (the
#     log sink: protocol modules may say what happened, never read a file);
#   - core/driver/ makes every call the preload hooks through sys.h, so that
#     inside libsrmudp.so the engine's own close() or send() never lands in
#     our exported hooks;
#   - core/ includes nothing from shim/, tools/ or bindings/.
# A failure names the file, the line and the call.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$root" || exit 1

python3 - <<'PY'
import os, re, sys

# Calls that mean I/O, threads or a clock.  Comments and strings are
# stripped first, so prose about "the socket" does not count.
FORBIDDEN = re.compile(r'\b(socket|socketpair|bind|listen|accept4?|connect|send|sendto|sendmsg|'
                       r'sendmmsg|recv|recvfrom|recvmsg|recvmmsg|epoll_\w+|poll|ppoll|select|'
                       r'pthread_\w+|clock_gettime|gettimeofday|time|nanosleep|usleep|sleep|'
                       r'getifaddrs|open|openat|fopen|read|write|close|ioctl|fcntl)\s*\(')
COMMENT = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', re.S)

def strip(text):
    # keep line numbers: replace each comment/string by its newlines
    return COMMENT.sub(lambda m: '\n' * m.group(0).count('\n'), text)

def headers(room):
    return {f for f in os.listdir(f'core/{room}') if f.endswith('.h')}

driver_or_config = (headers('driver') | headers('config')) - {'log.h'}
bad = 0
for name in sorted(os.listdir('core/protocol')):
    if not name.endswith(('.c', '.h')):
        continue
    path = f'core/protocol/{name}'
    text = open(path).read()
    for n, line in enumerate(strip(text).split('\n'), 1):
        m = FORBIDDEN.search(line)
        # function definitions and prototypes of our own (e.g. conn_..._open)
        # never match: the pattern wants the bare libc name.
        if m and not re.search(r'\.\s*' + re.escape(m.group(1)) + r'\s*\(|->\s*' + re.escape(m.group(1)), line):
            print(f'  FAIL  {path}:{n}: calls {m.group(1)}() in a sans-I/O module')
            bad += 1
    for n, line in enumerate(text.split('\n'), 1):
        m = re.match(r'\s*#\s*include\s*"([^"]+)"', line)
        if m and m.group(1) in driver_or_config:
            print(f'  FAIL  {path}:{n}: includes {m.group(1)} (driver/config room)')
            bad += 1

# The names shim/ exports as hooks (SHIM_EXPORT), read from the source.
hooked = set()
for f in os.listdir('shim'):
    if f.endswith('.c'):
        hooked |= set(re.findall(r'SHIM_EXPORT\s+[\w\s\*]*?\b(\w+)\s*\(', open('shim/' + f).read()))
HOOKED = re.compile(r'(?<![\w.>])(' + '|'.join(sorted(hooked)) + r')\s*\(')
for name in sorted(os.listdir('core/driver')):
    if not name.endswith('.c') or name == 'sys.c':
        continue
    path = f'core/driver/{name}'
    for n, line in enumerate(strip(open(path).read()).split('\n'), 1):
        m = HOOKED.search(line)
        if m:
            print(f'  FAIL  {path}:{n}: calls {m.group(1)}() directly; the preload hooks it (use sys_{m.group(1)})')
            bad += 1

outside = set()
for d in ('shim', 'tools', 'bindings'):
    for dirpath, _, files in os.walk(d):
        outside |= {f for f in files if f.endswith('.h')}
core_headers = set()
for dirpath, _, files in os.walk('core'):
    core_headers |= {f for f in files if f.endswith('.h')}
for dirpath, _, files in os.walk('core'):
    for f in sorted(files):
        if not f.endswith(('.c', '.h')):
            continue
        path = os.path.join(dirpath, f)
        for n, line in enumerate(open(path).read().split('\n'), 1):
            m = re.match(r'\s*#\s*include\s*"([^"]+)"', line)
            if m and m.group(1) not in core_headers:
                print(f'  FAIL  {path}:{n}: includes "{m.group(1)}" from outside core/')
                bad += 1

if bad:
    sys.exit(1)
print('  ok    core/protocol calls no socket, epoll, thread or clock function')
print('  ok    core/protocol includes no driver or configuration header but log.h')
print(f'  ok    core/driver calls none of the {len(hooked)} hooked names but through sys.h')
print('  ok    core/ includes nothing from shim/, tools/ or bindings/')
PY
