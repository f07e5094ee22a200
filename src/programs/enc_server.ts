// enc_server: serves enc_clients, encrypting for them in a pool of worker processes.
import { serverMain } from '../server/main.js';

serverMain('enc_server', 'encrypt');
