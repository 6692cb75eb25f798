// npm run openapi: writes openapi.yaml from the route schemas (the contract test fails when it is stale), then the
// docs tables generated from it and from the code (npm run docs), so a route change carries its docs along.
import fs from 'node:fs'
import { generateOpenApiYaml } from '../src/openapi.js'
import { writeTables } from './docs-tables.js'

fs.writeFileSync(new URL('../openapi.yaml', import.meta.url), await generateOpenApiYaml())
console.log('openapi.yaml written')
const written = writeTables()
if (written.length > 0) console.log(`docs tables written: ${written.join(', ')}`)
