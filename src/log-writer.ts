// Log output: every log line (pino's and the access log's) goes through one BatchedLineWriter on
// stdout, so lines stay whole and in order. Lines are collected up to 32 KiB (or 250 ms) and then
// written synchronously in pieces of whole lines of at most PIPE_BUF (4 KiB) each: a pipe takes
// such a write whole, so the lines of several workers sharing stdout never interleave mid-line.
// On a cache hit this costs well under 1 µs per line, where pino's own destination (sonic-boom,
// async, 4 KiB batches) cost 4–6 µs plus a thread-pool hop per batch (bench/README.md). Synchronous, as
// pino's default destination is: a log reader that stops reading slows the process rather than
// growing its memory; a non-blocking stdout that is full (EAGAIN) keeps the lines for the next
// attempt, up to MAX_PENDING_BYTES, past which lines are dropped and counted (and the count is
// logged once writing works again).
import { writeSync } from 'node:fs'

const BATCH_BYTES = 32 * 1024
/** POSIX PIPE_BUF on Linux: a write(2) of at most this many bytes to a pipe is atomic. */
const ATOMIC_BYTES = 4096
const FLUSH_EVERY_MS = 250
/** Lines held while stdout refuses them (EAGAIN); more are dropped. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024

export interface BatchedLineWriterOptions {
  batchBytes?: number
  flushEveryMs?: number
  maxPendingBytes?: number
  /** The write(2) used (tests make one that refuses). */
  writeSync?: (fd: number, data: Buffer) => number
}

export class BatchedLineWriter {
  private parts: string[] = []
  /** UTF-16 length of `parts` (≤ its byte length): enough to decide when to write. */
  private length = 0
  /** Pieces of whole lines not yet written (refused, or not reached), oldest first. */
  private queue: Buffer[] = []
  private queued = 0
  private dropped = 0
  private readonly batchBytes: number
  private readonly maxPendingBytes: number
  private readonly write2: (fd: number, data: Buffer) => number
  private readonly timer: NodeJS.Timeout
  private readonly onExit = () => this.flushSync()

  constructor(
    private readonly fd: number,
    opts: BatchedLineWriterOptions = {},
  ) {
    this.batchBytes = opts.batchBytes ?? BATCH_BYTES
    this.maxPendingBytes = opts.maxPendingBytes ?? MAX_PENDING_BYTES
    this.write2 = opts.writeSync ?? writeSync
    this.timer = setInterval(() => this.flushSync(), opts.flushEveryMs ?? FLUSH_EVERY_MS)
    this.timer.unref()
    // Whatever is held goes out before the process exits (process.exit() included).
    process.on('exit', this.onExit)
  }

  /** One or more whole lines (pino's DestinationStream). */
  write(line: string): boolean {
    if (this.length + this.queued >= this.maxPendingBytes) {
      // Full: perhaps stdout takes them now.
      this.flushSync()
      if (this.length + this.queued >= this.maxPendingBytes) {
        this.dropped++
        return false
      }
    }
    this.parts.push(line)
    this.length += line.length
    if (this.length >= this.batchBytes) this.flushSync()
    return true
  }

  /** Write what is held now; what stdout refuses stays held. */
  flushSync(): void {
    if (this.parts.length) {
      // Whole lines, grouped into pieces of at most ATOMIC_BYTES (a longer line goes alone).
      let group: string[] = []
      let size = 0
      for (const line of this.parts) {
        if (size > 0 && size + line.length > ATOMIC_BYTES) {
          this.enqueue(group)
          group = []
          size = 0
        }
        group.push(line)
        size += line.length
      }
      this.enqueue(group)
      this.parts = []
      this.length = 0
    }
    this.drain()
    if (this.dropped && this.queue.length === 0) {
      this.enqueue([
        `{"level":"warn","time":"${new Date().toISOString()}","service":"tokengate","pid":${process.pid},"dropped":${this.dropped},"msg":"log lines dropped: stdout did not take them"}\n`,
      ])
      this.dropped = 0
      this.drain()
    }
  }

  private enqueue(lines: string[]): void {
    const piece = Buffer.from(lines.length === 1 ? (lines[0] as string) : lines.join(''))
    this.queue.push(piece)
    this.queued += piece.length
  }

  private drain(): void {
    while (this.queue.length) {
      const piece = this.queue[0] as Buffer
      let n: number
      try {
        n = this.write2(this.fd, piece)
      } catch (err) {
        // A full non-blocking pipe: keep the bytes for the next flush. Anything else (stdout
        // closed): there is nowhere to say it; drop them rather than retry for ever.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
          this.queue = []
          this.queued = 0
        }
        return
      }
      this.queued -= n
      if (n >= piece.length) this.queue.shift()
      else this.queue[0] = piece.subarray(n)
    }
  }

  /** Stop the timer and the exit hook, writing what is held. */
  end(): void {
    clearInterval(this.timer)
    process.removeListener('exit', this.onExit)
    this.flushSync()
  }
}
