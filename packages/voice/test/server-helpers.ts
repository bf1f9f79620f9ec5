/**
 * Helpers for the voice server tests: real grpc-js clients on 127.0.0.1 that record what they receive and
 * how their call ended, and polling with generous deadlines instead of timing thresholds.
 * @module
 */
import * as grpc from '@grpc/grpc-js';
import { calling, type CallingProto, type ClientREQ, type ServerRES } from '../src/index.js';

/** Polls `condition` every 20 ms until it holds; throws `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** How a test client's call ended. */
export interface Ended {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
}

/** A connected test client. */
export interface TestClient {
  readonly client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<ClientREQ, ServerRES>;
  /** Every response received, in order. */
  readonly received: ServerRES[];
  /** Set once the call has ended (status received). */
  ended: Ended | undefined;
  /** Sends a voice frame. */
  send(name: string, chunk: Buffer | string, seq?: number): void;
  /** Sends the connection-test signal. */
  signal(): void;
  /** Voice frames received, as `name:chunk-text`. */
  frames(): string[];
  /** Resolves with the ending status. */
  done(): Promise<Ended>;
  /** Closes the channel (does not wait for the call). */
  close(): void;
}

/** Options of {@link connect}. */
export interface ConnectOptions {
  passcode?: string;
  room?: string;
  /** Another loading of the proto (e.g. the seed's own text); ours by default. */
  proto?: CallingProto;
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  callOptions?: grpc.CallOptions;
}

/** Opens a `VoIP` call to `address`, recording every response; a fresh channel per client (as separate processes would have). */
export function connect(address: string, options: ConnectOptions = {}): TestClient {
  const proto = options.proto ?? calling;
  // A unique option keeps grpc-js from sharing one subchannel (one TCP connection) between the clients.
  const client = new proto.Client(address, options.credentials ?? grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, ...options.channelOptions });
  const md = new grpc.Metadata();
  if (options.passcode !== undefined) md.set('passcode', options.passcode);
  if (options.room !== undefined) md.set('room', options.room);
  const call = client.VoIP(md, options.callOptions);
  const received: ServerRES[] = [];
  let resolveDone: (e: Ended) => void = () => {};
  const donePromise = new Promise<Ended>((r) => (resolveDone = r));
  const t: TestClient = {
    client, call, received, ended: undefined,
    send: (name, chunk, seq = 0) => {
      call.write({ message: { chunk: Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk), name, seq } });
    },
    signal: () => {
      call.write({ signal: {} });
    },
    frames: () => received.filter((r) => r.message).map((r) => `${r.message!.msg!.name}:${r.message!.msg!.chunk.toString()}`),
    done: () => donePromise,
    close: () => client.close(),
  };
  call.on('data', (res: ServerRES) => received.push(res));
  call.on('error', () => {});
  call.on('status', (s: grpc.StatusObject) => {
    t.ended = { code: s.code, details: s.details, metadata: s.metadata };
    resolveDone(t.ended);
  });
  return t;
}
