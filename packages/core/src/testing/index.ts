export { MemorySink } from '../sinks/memory-sink.js';
