/**
 * The `Calling` protocol (proto/calling.proto), loaded once with @grpc/proto-loader and typed, so the
 * server and the client share one definition. Messages are plain objects: `bytes` are Buffers, absent
 * scalars are their defaults (`seq` is 0 from a client built from the seed's proto), and a decoded oneof
 * names its set member (`request: 'message'`).
 * @module
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** One Opus packet from a client. */
export interface ClientMSG {
  chunk: Buffer;
  /** The speaker's display name. */
  name: string;
  /** The sender's frame counter (an addition to the seed's proto); 0 when the sender does not set it. */
  seq: number;
}

/** The connection test: the server echoes it as a {@link ServerSignal}. */
export type ClientSignal = Record<string, never>;

/** What a client sends: a voice frame or a signal. */
export interface ClientREQ {
  message?: ClientMSG | null;
  signal?: ClientSignal | null;
  /** Set on decoded requests: which member of the oneof is present (undefined: neither). */
  request?: 'message' | 'signal';
}

/** A frame forwarded to the other clients, tagged with the sender's connection id. */
export interface ServerMSG {
  msg: ClientMSG | null;
  /** The sender's connection id, chosen by the server. */
  id: string;
}

/** The server's answer to a {@link ClientSignal}. */
export type ServerSignal = Record<string, never>;

/** What the server sends: a forwarded frame or a signal echo. */
export interface ServerRES {
  message?: ServerMSG | null;
  signal?: ServerSignal | null;
  /** Set on decoded responses: which member of the oneof is present. */
  response?: 'message' | 'signal';
}

/** A `Calling` client (method `/Calling/VoIP`, bidirectional streaming). */
export interface CallingClient extends grpc.Client {
  VoIP(metadata?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<ClientREQ, ServerRES>;
}

/** The constructor of {@link CallingClient}: `new Client('127.0.0.1:50051', credentials, channelOptions)`. */
export type CallingClientConstructor = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => CallingClient;

/** A loaded `Calling` service: its definition (for `server.addService`) and its client constructor. */
export interface CallingProto {
  readonly service: grpc.ServiceDefinition;
  readonly Client: CallingClientConstructor;
}

/** The options every load uses; `defaults` makes `seq` 0 and `name` '' when absent, as proto3 reads them. */
export const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, bytes: Buffer, defaults: true, oneofs: true };

function findProto(): string {
  const beside = fileURLToPath(new URL('../proto/calling.proto', import.meta.url));
  if (existsSync(beside)) return beside;
  // A compiled copy (bench/dist mirrors the repository's tree) has no proto beside it: the repository's own
  // is further up.
  for (let dir = dirname(beside); dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, 'packages', 'voice', 'proto', 'calling.proto');
    if (existsSync(candidate)) return candidate;
  }
  return beside;
}

/** Absolute path of our calling.proto (resolved from this module, so it works from any working directory). */
export const PROTO_PATH = findProto();

/**
 * Loads a `Calling` service from a .proto file. Our own is {@link calling}; tests load the seed's proto text
 * with this to check wire compatibility.
 */
export function loadCallingProto(path: string): CallingProto {
  const definition = protoLoader.loadSync(path, LOADER_OPTIONS);
  const Client = grpc.loadPackageDefinition(definition).Calling as unknown as grpc.ServiceClientConstructor | undefined;
  if (typeof Client !== 'function') throw new Error(`${path} defines no Calling service at the top level`);
  return { service: Client.service, Client: Client as unknown as CallingClientConstructor };
}

/** The `Calling` service from proto/calling.proto. */
export const calling: CallingProto = loadCallingProto(PROTO_PATH);

/** The full method path of `VoIP`, as on the wire. */
export const VOIP_PATH = '/Calling/VoIP';
