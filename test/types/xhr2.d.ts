// xhr2 ships no types: it is an XMLHttpRequest class for Node (used by dicomweb-client in tests).
declare module 'xhr2' {
  const XMLHttpRequest: unknown
  export default XMLHttpRequest
}
