// ESM entry: the same API as the CommonJS lib/srmudp.js.
import srmudp from './srmudp.js';

export const { keygen, loadKey, publicKey, createClient, connect, SrmudpError, setCoreUrl } = srmudp;
export default srmudp;
