// The admin API described as OpenAPI 3.1 (`GET /openapi.json` on the admin listener), built from
// the route table (admin/api-routes.ts) so the description cannot drift from what is served:
// every route, method, query parameter and body field there, and the common refusal shape.
import type { Route } from './api-routes.js'

type Json = Record<string, unknown>

const ERROR = {
  description: 'Refused: { error, reason, field? } (field is the JSON field or query parameter at fault)',
  content: {
    'application/json': {
      schema: {
        type: 'object',
        required: ['error', 'reason'],
        properties: { error: { type: 'string' }, reason: { type: 'string' }, field: { type: 'string' } },
      },
    },
  },
}

/** `/tokens/:id/revoke` → `/tokens/{id}/revoke`, and its parameter names. */
function openPath(pattern: string): { path: string; params: string[] } {
  const params: string[] = []
  const path = pattern
    .split('/')
    .map((s) => {
      if (!s.startsWith(':')) return s
      params.push(s.slice(1))
      return `{${s.slice(1)}}`
    })
    .join('/')
  return { path, params }
}

export function openApiFor(routes: readonly Route[], version: string): Json {
  const paths: Json = {}
  for (const route of routes) {
    const { path, params } = openPath(route.pattern)
    const item: Json = {}
    for (const [method, endpoint] of Object.entries(route.methods)) {
      const operation: Json = {
        operationId: `${method.toLowerCase()}${path.replace(/[{}]/g, '').replace(/[/.-](\w)/g, (_, c: string) => c.toUpperCase())}`,
        parameters: [
          ...params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
          ...(endpoint.query ?? []).map((name) => ({
            name,
            in: 'query',
            required: false,
            schema: { type: 'string' },
          })),
        ],
        responses: {
          '200': { description: 'Done', content: { 'application/json': { schema: { type: 'object' } } } },
          '400': ERROR,
          '401': ERROR,
          '404': ERROR,
        },
      }
      if (endpoint.body?.length) {
        operation.requestBody = {
          required: false,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                additionalProperties: false,
                properties: Object.fromEntries(endpoint.body.map((f) => [f, {}])),
              },
            },
          },
        }
      }
      item[method.toLowerCase()] = operation
    }
    paths[path] = item
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'tokengate admin API',
      version,
      description:
        'Token, user and membership administration; every call takes the admin key as a Bearer token. The CLI (`tokengate token …`) runs the same operations.',
    },
    components: {
      securitySchemes: { adminKey: { type: 'http', scheme: 'bearer' } },
    },
    security: [{ adminKey: [] }],
    paths,
  }
}
