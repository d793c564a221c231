// The browser page's server: `convkit web` serves web/, one exported model and onnxruntime-web.
export { isLoopback } from './hosts.js';
export { startWebServer, createPageSite, hostAllowed, suspiciousPath, PAGE_FILES, ORT_FILES, type WebServer, type WebServerOptions, type WebModelJson, type PageSite } from './server.js';
