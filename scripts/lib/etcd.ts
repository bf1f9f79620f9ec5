/**
 * Starting real etcd members on 127.0.0.1, shared by the kv benchmark and the etcd compatibility test.
 * @module
 */
import { createServer } from 'node:net';

export const HOST = '127.0.0.1';

/** A TCP port free on 127.0.0.1 right now (etcd needs its ports named; it cannot take port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, HOST, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** One member of a new cluster, every URL on 127.0.0.1. */
export interface EtcdMember {
  name: string;
  dataDir: string;
  clientPort: number;
  peerPort: number;
}

/** The command-line flags of `member` in a new cluster of `all`; `extra` flags follow (timing, logging…). */
export function etcdArgs(member: EtcdMember, all: readonly EtcdMember[], token: string, extra: readonly string[] = []): string[] {
  return [
    '--name', member.name, '--data-dir', member.dataDir,
    '--listen-client-urls', `http://${HOST}:${member.clientPort}`, '--advertise-client-urls', `http://${HOST}:${member.clientPort}`,
    '--listen-peer-urls', `http://${HOST}:${member.peerPort}`, '--initial-advertise-peer-urls', `http://${HOST}:${member.peerPort}`,
    '--initial-cluster', all.map((m) => `${m.name}=http://${HOST}:${m.peerPort}`).join(','),
    '--initial-cluster-state', 'new', '--initial-cluster-token', token, '--log-level', 'error', ...extra,
  ];
}
