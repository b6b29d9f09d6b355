// PLACEHOLDER written by the wasm branch; the relay branch owns this file:
// on merge, take the relay branch's version in full.
/** Sends finished messages to a postwire relay (provided by the relay branch). */
export declare class RelayClient {
  private constructor();
}
