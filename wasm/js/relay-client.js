// PLACEHOLDER written by the wasm branch so that the package entry can
// re-export RelayClient before the relay branch lands. The relay branch owns
// this file: on merge, take the relay branch's version in full.
export class RelayClient {
  constructor() {
    throw new Error('RelayClient is not in this build yet (placeholder; the relay branch provides it)');
  }
}
