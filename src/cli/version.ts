// The package's version, which --version prints; esbuild inlines it from package.json.
import packageJson from '../../package.json';

export const VERSION: string = packageJson.version;
