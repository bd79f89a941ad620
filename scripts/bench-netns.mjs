// A benchmark's inner half in a private network namespace: `ip netns add`, loopback up with the given
// addresses (/32 on lo), then this same script again with --inner inside it; the namespace is deleted
// whatever happens. Returns the inner run's exit status. Namespaces are named with ROLECAST_NS_PREFIX.
import { spawnSync } from 'node:child_process';

export function runInNetns(tag, script, addresses, cwd) {
  const ns = `${process.env.ROLECAST_NS_PREFIX ?? ''}${tag}${process.pid}`;
  spawnSync('ip', ['netns', 'add', ns]);
  spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  if (addresses.length) spawnSync('ip', ['-n', ns, '-batch', '-'], { input: addresses.map((a) => `addr add ${a}/32 dev lo`).join('\n') + '\n' });
  try {
    return spawnSync('ip', ['netns', 'exec', ns, process.execPath, script, '--inner'], { stdio: 'inherit', cwd }).status ?? 1;
  } finally {
    spawnSync('ip', ['netns', 'delete', ns]);
  }
}
