// The scope-integrity tables (issues 11 and 14): request targets the proxy must refuse, and the
// canonical target it forwards for others. Shared by the proxy's own tests
// (integration/proxy-scoping-query.test.ts) and the decision endpoint's
// (integration/decision-endpoint.test.ts), so both are held to one list.

/** Query spellings other parsers read as a scope parameter: 400 ambiguous_request, on `/api/studies?…`. */
export const SCOPE_SPELLINGS = [
  'album[]=B',
  'album%5B%5D=B',
  '[album]=B',
  'x=1;album=B',
  'album%00=B',
  '%2561lbum=B',
  'ALBUM=B',
  '%61lbum=B',
  'album+=B',
  '0020,000D=1.2.3',
  '0020-000D=1.2.3',
  '(0020,000D)=1.2.3',
  'studyinstanceuid=1.2.3',
]

/** Targets with a raw `#`: 400 ambiguous_request. */
export const FRAGMENT_TARGETS = ['/api/studies#x?album=B', '/api/studies?limit=1#&album=B', '/api/studies?x#']

/** Paths other servers read as dot segments (or merge): 400 ambiguous_request. */
export const DOT_SEGMENT_PATHS = [
  '/api/studies/..;/instances',
  '/api/studies/.;/1.2.3',
  '/api/studies/..%3b/instances',
  '/api/studies/%2e%2e%3b/instances',
  '/api/studies/..%00/instances',
  '/api/studies/%252e%252e/instances',
  '/api/studies/%2e%2e%20/instances',
  '/api/studies;x=1/1.2.3',
  '/api/studies//1.2.3',
]

/** Spellings of `accept`: 400 ambiguous_request, on `/api/studies/1.2.3?…`. */
export const ACCEPT_SPELLINGS = [
  '%61ccept=application/zip',
  'acc%65pt=application%2Fzip',
  'Accept=application/zip',
]

/** An album-A1 read token asking for something else on `/api/studies?…`: the status it gets. */
export const ALBUM_TOKEN_REFUSALS: [string, number][] = [
  ['album=A2', 404],
  ['album=A1&album=A2', 404],
  ['ALBUM=A2', 400],
  ['%61lbum=A2', 400],
  ['inbox=true', 403],
  ['inbox=TRUE', 403],
  ['InBoX=TRUE', 400],
]

/** An album-A1 token's query on `/api/studies?…` → what an upstream at `<…>/dicom-web` receives. */
export const CANONICAL_QUERIES: [string, string][] = [
  ['limit=2&album=A1', '/dicom-web/studies?limit=2&album=A1'],
  ['PatientName=D%C3%B6e&limit=2', '/dicom-web/studies?PatientName=D%C3%B6e&limit=2&album=A1'],
  ['%50atientName=x', '/dicom-web/studies?PatientName=x&album=A1'],
  ['a=1&&b=%2F', '/dicom-web/studies?a=1&b=/&album=A1'],
  ['q=a+b&r=%2B', '/dicom-web/studies?q=a+b&r=%2B&album=A1'],
  ['StudyInstanceUID=1.2.3', '/dicom-web/studies?StudyInstanceUID=1.2.3&album=A1'],
]
