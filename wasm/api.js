// The public names of the package, shared by the Node and browser entries.
// Each entry instantiates the WebAssembly module first, then re-exports these.
export { buildEml, parseEml, envelopeOf, toIcs, parseIcs, parseCalendar, replyEml, encodeTnef, decodeTnef, parseReport } from './pkg/postwire_wasm.js';
export { RelayClient, readBlobs } from './js/relay-client.js';
