// qs (the query parser Express uses) ships no types; the fuzz suites only call parse().
declare module 'qs' {
  const qs: { parse(query: string, options?: Record<string, unknown>): Record<string, unknown> }
  export default qs
}
