export { createTransport, errorReply, jsonReply } from './http.js'
export type { HttpHandler, HttpMethod, HttpReply, HttpRequestInfo, Route, Transport } from './http.js'
export type { EngineInfo } from './native-engine.js'
