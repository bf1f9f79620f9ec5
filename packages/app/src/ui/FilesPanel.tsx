/**
 * Files in the room: the composer's attach button, dropping files onto the chat, and the Files panel (every
 * file sent or received, with progress per receiver, download links and image previews). Drawn from the
 * room client's `files` view; `data-*` attributes name what the end-to-end tests read.
 * @module
 */
import { useEffect, useId, useRef, useState, useSyncExternalStore, type DragEvent, type ReactNode } from 'react';
import { MAX_SHARE_BYTES, RASTER_IMAGE, formatBytes, type FileShare, type FilesView, type FileTargetView, type SharedFileView } from '../room/index.js';
import { clockTime, fullTime } from './format.js';

function useFilesView(files: FileShare): FilesView {
  return useSyncExternalStore(files.subscribe, () => files.view);
}

/** The paperclip beside the composer, with the refusal notice (too large, nobody connected) under it. */
export function AttachButton({ files, disabled }: { files: FileShare; disabled: boolean }) {
  const input = useRef<HTMLInputElement>(null);
  const { notice } = useFilesView(files);
  const id = useId();
  return (
    <>
      <input
        ref={input} id={id} type="file" multiple className="visually-hidden" tabIndex={-1} aria-hidden="true" data-testid="file-input"
        onChange={(e) => {
          const picked = e.currentTarget.files;
          if (picked && picked.length > 0) files.shareAll(Array.from(picked));
          e.currentTarget.value = ''; // the same file may be picked again
        }}
      />
      <button
        type="button" className="btn attach" id="attach" disabled={disabled} onClick={() => input.current?.click()}
        aria-label="Send a file to everyone" title={`Send a file to everyone (at most ${formatBytes(MAX_SHARE_BYTES)})`}
      >
        <ClipIcon />
      </button>
      {notice ? (
        <p className="composer-error attach-error" role="alert" id="file-notice">
          {notice}{' '}
          <button type="button" className="link-button" onClick={() => files.dismissNotice()}>Dismiss</button>
        </p>
      ) : null}
    </>
  );
}

/**
 * Files dropped onto the element the returned `handlers` go on are shared with everyone; `overlay` says
 * so while files are dragged over it. Drags of anything but files (text, links) are left alone.
 */
export function useFileDrop(files: FileShare): { dragging: boolean; handlers: Record<string, (e: DragEvent<HTMLElement>) => void>; overlay: ReactNode } {
  const [dragging, setDragging] = useState(false);
  const carriesFiles = (e: DragEvent<HTMLElement>) => Array.from(e.dataTransfer.types).includes('Files');
  const handlers = {
    onDragEnter: (e: DragEvent<HTMLElement>) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      setDragging(true);
    },
    onDragOver: (e: DragEvent<HTMLElement>) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
    },
    onDragLeave: (e: DragEvent<HTMLElement>) => {
      if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
    },
    onDrop: (e: DragEvent<HTMLElement>) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      setDragging(false);
      files.shareAll(Array.from(e.dataTransfer.files));
    },
  };
  const overlay = dragging ? <div className="drop-overlay" aria-hidden="true"><p>Drop to send to everyone in the room</p></div> : null;
  return { dragging, handlers, overlay };
}

/** Every file sent or received in this visit, newest first (a transfer in progress stays in sight). */
export function FilesPanel({ files }: { files: FileShare }) {
  const view = useFilesView(files);
  const active = view.files.filter((f) => f.state === 'sending' || f.state === 'receiving').length;
  return (
    <section className="card panel files-panel" aria-labelledby="files-title">
      <h2 id="files-title">Files <span className="count">{view.files.length}</span></h2>
      {/* Progress changes often; only the start and end of transfers are worth announcing. */}
      <p className="visually-hidden" role="status">{active > 0 ? `${active} file${active > 1 ? 's' : ''} in transfer` : ''}</p>
      {view.files.length === 0 ? (
        <p className="muted">No files yet. Attach one beside the message box, or drop it onto the chat: it goes straight to everyone connected.</p>
      ) : (
        <ul className="files" id="files">
          {[...view.files].reverse().map((f) => <FileItem key={f.key} f={f} files={files} />)}
        </ul>
      )}
    </section>
  );
}

const TARGET_TEXT: Record<FileTargetView['state'], string> = {
  queued: 'waiting', sending: 'sending', sent: 'sent', delivered: 'received ✓', failed: 'failed', cancelled: 'cancelled',
};

const percent = (bytes: number, total: number): number => (total === 0 ? 100 : Math.floor((bytes / total) * 100));

function FileItem({ f, files }: { f: SharedFileView; files: FileShare }) {
  const out = f.direction === 'out';
  const busy = f.state === 'sending' || f.state === 'receiving';
  const image = f.blob !== null && RASTER_IMAGE.test(f.mime) && f.size <= PREVIEW_MAX_BYTES;
  return (
    <li
      className={`file-item is-${f.state}`} data-key={f.key} data-direction={f.direction} data-state={f.state} data-name={f.name}
      data-bytes={f.bytes} data-total={f.total} data-verified={f.verified === null ? '' : String(f.verified)} data-from={f.from}
    >
      <div className="file-main">
        {image ? <ImagePreview blob={f.blob!} name={f.name} /> : <span className="file-icon" aria-hidden="true"><DocIcon /></span>}
        <div className="file-info">
          <p className="file-name">
            {f.url
              ? <a href={f.url} download={f.name} className="file-download">{f.name}<span className="visually-hidden">, download</span></a>
              : <span>{f.name}</span>}
          </p>
          <p className="file-meta">
            {formatBytes(f.size)}{f.mime ? ` · ${f.mime}` : ''} · {out ? 'you sent' : `from ${f.fromName}`}{' '}
            <time dateTime={new Date(f.at).toISOString()} title={fullTime(f.at)}>{clockTime(f.at)}</time>
          </p>
        </div>
      </div>
      {busy ? (
        <div className="file-progress">
          <progress max={Math.max(f.total, 1)} value={f.total === 0 ? 1 : f.bytes} aria-label={`${out ? 'Sending' : 'Receiving'} ${f.name}`} />
          <span className="file-percent">{percent(f.bytes, f.total)}%</span>
        </div>
      ) : null}
      <p className="file-status">
        <FileStatus f={f} />
        {out && busy ? <button type="button" className="link-button" onClick={() => files.cancel(f.key)}>Cancel<span className="visually-hidden"> sending {f.name}</span></button> : null}
        {!busy ? <button type="button" className="link-button file-remove" onClick={() => files.remove(f.key)}>Remove<span className="visually-hidden"> {f.name} from the list</span></button> : null}
      </p>
      {out ? (
        <ul className="file-targets" aria-label={`Receivers of ${f.name}`}>
          {f.targets.map((t) => (
            <li key={t.peerId} data-peer-id={t.peerId} data-state={t.state} data-bytes={t.bytes} className={`target is-${t.state}`}>
              <span className="target-name">{t.name}</span>
              <span className="target-state">
                {t.state === 'sending' ? `${percent(t.bytes, f.size)}%` : TARGET_TEXT[t.state]}
              </span>
              {t.error ? <span className="target-error">{t.error}</span> : null}
            </li>
          ))}
        </ul>
      ) : null}
    </li>
  );
}

function FileStatus({ f }: { f: SharedFileView }) {
  if (f.state === 'failed') return <span className="file-state file-state-failed">{f.direction === 'out' ? 'Not sent' : 'Failed'}{f.error ? `: ${f.error}` : ''}</span>;
  if (f.state === 'cancelled') return <span className="file-state file-state-cancelled">Cancelled{f.error ? `: ${f.error}` : ''}</span>;
  if (f.state === 'sending') return <span className="file-state">Sending to {f.targets.length} {f.targets.length === 1 ? 'person' : 'people'}</span>;
  if (f.state === 'receiving') return <span className="file-state">Receiving</span>;
  if (f.direction === 'out') {
    const got = f.targets.filter((t) => t.state === 'delivered').length;
    return <span className="file-state file-state-done">Received by {got} of {f.targets.length}</span>;
  }
  return <span className="file-state file-state-done">{f.verified ? 'Received, checksum verified' : 'Received, checking…'}</span>;
}

/** Images above this are not decoded for a preview (a crafted image can take a lot of memory to decode). */
const PREVIEW_MAX_BYTES = 16 * 1024 * 1024;
/** The preview's largest side, in CSS pixels. */
const PREVIEW_PX = 72;

/**
 * A small preview drawn on a canvas: the page's content security policy allows no `blob:` images, and a
 * canvas drawn from `createImageBitmap` needs none. Decoding failures (a damaged file, SVG) show no preview.
 */
function ImagePreview({ blob, name }: { blob: Blob; name: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const [shown, setShown] = useState(false);
  useEffect(() => {
    let live = true;
    createImageBitmap(blob).then((bitmap) => {
      const canvas = ref.current;
      if (!live || !canvas) return bitmap.close();
      const scale = Math.min(1, PREVIEW_PX / Math.max(bitmap.width, bitmap.height)) * (globalThis.devicePixelRatio || 1);
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      canvas.getContext('2d')?.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      bitmap.close();
      setShown(true);
    }, () => { if (live) setShown(false); });
    return () => { live = false; };
  }, [blob]);
  return (
    <>
      <canvas ref={ref} className="file-preview" role="img" aria-label={`Preview of ${name}`} hidden={!shown} />
      {shown ? null : <span className="file-icon" aria-hidden="true"><DocIcon /></span>}
    </>
  );
}

const ClipIcon = () => (
  <svg className="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z" /></svg>
);
const DocIcon = () => (
  <svg className="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm7 1.5V9h5.5z" /></svg>
);
