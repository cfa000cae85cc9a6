/* synth_folded.js — folded stacks of about `bytes` bytes, like a Go
 * service's: a few packages, call trees 10-40 deep.  Deterministic (an
 * LCG seeded with 1), for the web page's responsiveness check
 * (tests/integration/web_page.sh, scripts/bench). */
function synthFolded(bytes) {
  let seed = 1;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const pkgs = ['runtime', 'net/http', 'encoding/json', 'github.com/acme/shop/api',
    'github.com/acme/shop/store', 'database/sql', 'compress/gzip', 'sync', 'bufio', 'crypto/tls'];
  const funcs = [];
  for (let i = 0; i < 400; i++)
    funcs.push(pkgs[rnd(pkgs.length)] + '.' + ['(*Server).', '(*conn).', '', '(*Decoder).'][rnd(4)] +
      ['serve', 'Read', 'Write', 'handle', 'decode', 'encode', 'lookup', 'mallocgc', 'scan', 'Lock'][rnd(10)] + i);
  const out = [];
  let size = 0;
  while (size < bytes) {
    const depth = 10 + rnd(30), st = ['runtime.main', 'main.main'];
    for (let d = 0; d < depth; d++) st.push(funcs[(d * 7 + rnd(d < 6 ? 3 : 60)) % funcs.length]);
    const line = st.join(';') + ' ' + (1 + rnd(5000)) * 10000000;
    out.push(line);
    size += line.length + 1;
  }
  return out.join('\n') + '\n';
}
