/** rnnkit: recurrent neural networks for Node.js with a Rust core. The public entry point. */
export { engineInfo } from './native';
export type { EngineInfo } from './native';
