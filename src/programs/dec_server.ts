// dec_server: serves dec_clients, decrypting for them in a pool of worker processes.
import { serverMain } from '../server/main.js';

serverMain('dec_server', 'decrypt');
