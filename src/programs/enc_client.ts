// enc_client: encrypts a file with a key through a enc_server.
import { clientMain } from '../client/main.js';

clientMain('enc_client', 'encrypt');
