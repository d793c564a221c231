// The page imports onnxruntime-web's WebAssembly build from ./ort/ (served by `convkit web`);
// tsconfig.web.json maps that path here (rootDirs) so that web/*.js are type-checked against the
// package's own declarations.
export * from 'onnxruntime-web';
