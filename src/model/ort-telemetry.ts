/**
 * Turns off ONNX Runtime's telemetry before the library loads (import this first).
 *
 * onnxruntime-node 1.30's Linux build ships Microsoft's 1DS telemetry client. It collects
 * the machine id, OS and the process's command line, and tries HTTPS uploads: nothing a
 * self-hosted, private service should do. Worse, it parses /proc/self/cmdline with a
 * std::regex whose recursion takes about 280 bytes of stack per byte of command line, so a
 * long `tessera embed --text "..."` overflowed the inference thread's stack and killed the
 * process (issue 8; scripts/measure-inference-stack.mjs measures it). A user who wants the
 * telemetry can set ORT_DISABLE_TELEMETRY=0 themselves.
 */
if (process.env.ORT_DISABLE_TELEMETRY === undefined) process.env.ORT_DISABLE_TELEMETRY = '1';

export {};
