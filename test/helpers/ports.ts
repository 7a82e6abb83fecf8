// A free TCP port on loopback (shared with the demo and benchmarks: scripts/lib/ports.js).
export { freePort } from '../../scripts/lib/ports.js'
