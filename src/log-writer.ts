// Log output: every log line (pino's and the access log's) goes through one BatchedLineWriter on
// stdout, so lines stay whole and in order. Lines are collected and written with one synchronous
// write(2) per 32 KiB, and at least every 250 ms: on a cache hit this costs well under 1 µs per
// line, where pino's own destination (sonic-boom, async, 4 KiB batches) cost 4–6 µs plus a
// thread-pool hop per batch (bench/README.md, "Where a cache hit's CPU goes"). Synchronous, as
// pino's default destination is: a log reader that stops reading slows the process rather than
// growing its memory; a non-blocking stdout that is full (EAGAIN) keeps the lines for the next
// attempt, up to MAX_PENDING_BYTES, past which lines are dropped and counted (and the count is
// logged once writing works again).
import { writeSync } from 'node:fs'

const BATCH_BYTES = 32 * 1024
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
  /** Bytes a refused write left behind, written before anything newer. */
  private unwritten: Buffer | null = null
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
    if (this.pending() >= this.maxPendingBytes) {
      // Full: perhaps stdout takes them now.
      this.flushSync()
      if (this.pending() >= this.maxPendingBytes) {
        this.dropped++
        return false
      }
    }
    this.parts.push(line)
    this.length += line.length
    if (this.length >= this.batchBytes) this.flushSync()
    return true
  }

  private pending(): number {
    return this.length + (this.unwritten?.length ?? 0)
  }

  /** Write what is held now; what stdout refuses stays held. */
  flushSync(): void {
    if (this.parts.length) {
      const data = Buffer.from(this.parts.join(''))
      this.parts = []
      this.length = 0
      this.unwritten = this.unwritten ? Buffer.concat([this.unwritten, data]) : data
    }
    this.drain()
    if (this.dropped && this.unwritten === null) {
      this.unwritten = Buffer.from(
        `{"level":"warn","time":"${new Date().toISOString()}","service":"tokengate","pid":${process.pid},"dropped":${this.dropped},"msg":"log lines dropped: stdout did not take them"}\n`,
      )
      this.dropped = 0
      this.drain()
    }
  }

  private drain(): void {
    while (this.unwritten) {
      let n: number
      try {
        n = this.write2(this.fd, this.unwritten)
      } catch (err) {
        // A full non-blocking pipe: keep the bytes for the next flush. Anything else (stdout
        // closed): there is nowhere to say it; drop them rather than retry for ever.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') this.unwritten = null
        return
      }
      this.unwritten = n >= this.unwritten.length ? null : this.unwritten.subarray(n)
    }
  }

  /** Stop the timer and the exit hook, writing what is held. */
  end(): void {
    clearInterval(this.timer)
    process.removeListener('exit', this.onExit)
    this.flushSync()
  }
}
