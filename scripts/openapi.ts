// npm run openapi: writes openapi.yaml from the route schemas (the contract test fails when it is stale).
import fs from 'node:fs'
import { generateOpenApiYaml } from '../src/openapi.js'

fs.writeFileSync(new URL('../openapi.yaml', import.meta.url), await generateOpenApiYaml())
console.log('openapi.yaml written')
