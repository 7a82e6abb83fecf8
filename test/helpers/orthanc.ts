// Orthanc with its DICOMweb plugin on free ports, with a temporary storage folder, and synthetic
// studies created through its REST API. The code is shared with the demo (scripts/lib/orthanc.js).
// Usage: const orthanc = await startOrthanc(); t.teardown(orthanc.stop)
export {
  type CreatedStudy,
  createStudy,
  makeInstanceFile,
  makePng,
  type OrthancHandle,
  type StudyInput,
  startOrthanc,
} from '../../scripts/lib/orthanc.js'
