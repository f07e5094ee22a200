// dec_client: decrypts a file with a key through a dec_server.
import { clientMain } from '../client/main.js';

clientMain('dec_client', 'decrypt');
