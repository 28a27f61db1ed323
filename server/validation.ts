// JSON-schema validation of every request body (ajv). A failure becomes a 400 that names the field,
// e.g. `max_tokens must be >= 0` with param 'max_tokens'.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { HttpError } from './errors.ts'

export interface ServerLimits {
  /** Largest request body, in bytes. */
  bodyBytes: number
  /** Largest max_tokens a completion may ask for. */
  maxTokens: number
  /** Longest prompt, in tokens (after tokenization). */
  maxPromptTokens: number
  /** Largest n (choices per prompt) times the number of prompts. */
  maxChoices: number
  /** Longest text to score or tokenize, in characters. */
  maxTextChars: number
  /** A request that runs longer is cut off (finish_reason 'length'). */
  requestTimeoutMs: number
  /**
   * A stream's chunks are written at most once per this many milliseconds (the first at once); chunks
   * that come sooner wait and go out together in one socket write. 0 writes every chunk on its own.
   */
  streamFlushMs: number
  /** Most generations that share one model's forward calls. */
  maxBatch: number
  /** Most requests waiting for a batch slot, per model; beyond that, 429 with Retry-After. */
  maxQueue: number
}

export const defaultLimits: ServerLimits = {
  bodyBytes: 1 << 20,
  maxTokens: 2048,
  maxPromptTokens: 8192,
  maxChoices: 16,
  maxTextChars: 200_000,
  requestTimeoutMs: 120_000,
  streamFlushMs: 10,
  maxBatch: 32,
  maxQueue: 256,
}

const modelName = { type: 'string', minLength: 1, maxLength: 256 }
const maxInt = Number.MAX_SAFE_INTEGER

/** A prompt as token ids: a non-empty array of vocabulary ids (the route checks them against the model). */
const tokenIds = (limits: ServerLimits) => ({ type: 'array', minItems: 1, maxItems: limits.maxPromptTokens, items: { type: 'integer', minimum: 0, maximum: maxInt } })

const stopSchema = {
  anyOf: [
    { type: 'null' },
    { type: 'string', minLength: 1, maxLength: 256 },
    { type: 'array', maxItems: 4, items: { type: 'string', minLength: 1, maxLength: 256 } },
  ],
}

/** The fields completions and chat completions share: sampling (OpenAI's names, plus top_k and
 * repetition_penalty), streaming, and penalties accepted at their neutral values. */
const samplingProperties = (limits: ServerLimits) => ({
  temperature: { type: ['number', 'null'], minimum: 0, maximum: 100 },
  top_p: { type: ['number', 'null'], minimum: 0, maximum: 1 },
  top_k: { type: ['integer', 'null'], minimum: 0, maximum: maxInt },
  repetition_penalty: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 100 },
  n: { type: ['integer', 'null'], minimum: 1, maximum: limits.maxChoices },
  stop: stopSchema,
  seed: { type: ['integer', 'null'], minimum: 0, maximum: maxInt },
  stream: { type: ['boolean', 'null'] },
  stream_options: {
    type: ['object', 'null'],
    properties: { include_usage: { type: ['boolean', 'null'] } },
  },
  // OpenAI fields we accept only at their neutral values, so clients that send defaults still work.
  presence_penalty: { type: ['number', 'null'], const: 0 },
  frequency_penalty: { type: ['number', 'null'], const: 0 },
})

export function schemas(limits: ServerLimits) {
  return {
    completions: {
      type: 'object',
      required: ['prompt'],
      properties: {
        model: modelName,
        // A text, token ids, or a list of either (OpenAI's four prompt forms).
        prompt: {
          anyOf: [
            { type: 'string', maxLength: limits.maxTextChars },
            tokenIds(limits),
            { type: 'array', minItems: 1, maxItems: limits.maxChoices, items: { anyOf: [{ type: 'string', maxLength: limits.maxTextChars }, tokenIds(limits)] } },
          ],
        },
        max_tokens: { type: ['integer', 'null'], minimum: 0, maximum: limits.maxTokens },
        ...samplingProperties(limits),
        logprobs: { type: ['integer', 'null'], minimum: 0, maximum: 5 },
        echo: { type: ['boolean', 'null'] },
        // OpenAI fields we accept only at their neutral values, so clients that send defaults still work.
        best_of: { type: ['integer', 'null'], minimum: 1, maximum: 1 },
        suffix: { type: ['string', 'null'], maxLength: 0 },
        logit_bias: { type: ['object', 'null'], maxProperties: 0 },
        user: { type: 'string', maxLength: 256 },
      },
    },
    chat: {
      type: 'object',
      required: ['messages'],
      properties: {
        model: modelName,
        messages: {
          type: 'array',
          minItems: 1,
          maxItems: 1024,
          items: {
            type: 'object',
            required: ['role'],
            properties: {
              role: { enum: ['system', 'developer', 'user', 'assistant'] },
              content: {
                anyOf: [
                  { type: 'null' },
                  { type: 'string', maxLength: limits.maxTextChars },
                  { type: 'array', maxItems: 256, items: { type: 'object', required: ['type'], properties: { type: { type: 'string' }, text: { type: 'string', maxLength: limits.maxTextChars } } } },
                ],
              },
              name: { type: 'string', maxLength: 256 },
            },
          },
        },
        max_tokens: { type: ['integer', 'null'], minimum: 0, maximum: limits.maxTokens },
        max_completion_tokens: { type: ['integer', 'null'], minimum: 0, maximum: limits.maxTokens },
        ...samplingProperties(limits),
        logprobs: { type: ['boolean', 'null'] },
        top_logprobs: { type: ['integer', 'null'], minimum: 0, maximum: 5 },
        // OpenAI fields we accept only at their neutral values, so clients that send defaults still work.
        logit_bias: { type: ['object', 'null'], maxProperties: 0 },
        tools: { type: ['array', 'null'], maxItems: 0 },
        tool_choice: { enum: ['none', null] },
        response_format: { type: ['object', 'null'], properties: { type: { const: 'text' } } },
        user: { type: 'string', maxLength: 256 },
      },
    },
    perplexity: {
      type: 'object',
      required: ['text'],
      properties: {
        model: modelName,
        text: { type: 'string', minLength: 0, maxLength: limits.maxTextChars },
        per_token: { type: ['boolean', 'null'] },
        top_logprobs: { type: ['integer', 'null'], minimum: 0, maximum: 20 },
      },
    },
    tokenize: {
      type: 'object',
      properties: {
        model: modelName,
        text: { type: 'string', maxLength: limits.maxTextChars },
        prompt: { type: 'string', maxLength: limits.maxTextChars },
      },
      anyOf: [{ required: ['text'] }, { required: ['prompt'] }],
    },
    detokenize: {
      type: 'object',
      required: ['tokens'],
      properties: {
        model: modelName,
        tokens: { type: 'array', maxItems: limits.maxTextChars, items: { type: 'integer', minimum: 0, maximum: maxInt } },
      },
    },
  } as const
}

export type SchemaName = keyof ReturnType<typeof schemas>

// How a field must look, for the fields whose schema is an anyOf (ajv's own messages there are unhelpful).
const shapes: Record<string, string> = {
  prompt: 'a string, an array of token ids, or a non-empty array of strings or of token-id arrays',
  stop: 'a string, an array of up to 4 non-empty strings, or null',
  presence_penalty: '0 (use repetition_penalty)',
  frequency_penalty: '0 (use repetition_penalty)',
  best_of: '1',
  suffix: 'empty (suffix is not supported)',
  logit_bias: 'empty (logit_bias is not supported)',
  tools: 'empty (tools are not supported)',
  tool_choice: "'none' (tools are not supported)",
  response_format: "{ type: 'text' } (structured output is not supported)",
}

export class Validator {
  private readonly compiled: Record<string, ValidateFunction>

  constructor(limits: ServerLimits) {
    const ajv = new Ajv({ allErrors: false, strict: false })
    this.compiled = {}
    for (const [name, schema] of Object.entries(schemas(limits))) this.compiled[name] = ajv.compile(schema)
  }

  /** Returns the body, typed by the caller, or throws a 400 HttpError naming the offending field. */
  check<T>(name: SchemaName, body: unknown): T {
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new HttpError(400, 'request body must be a JSON object', null, 'invalid_body')
    }
    const validate = this.compiled[name]
    if (!validate(body)) throw toHttpError(validate.errors ?? [], name)
    return body as T
  }
}

function toHttpError(errors: ErrorObject[], schema: string): HttpError {
  const e = errors[0]
  if (!e) return new HttpError(400, 'invalid request body')
  if (e.keyword === 'required') {
    const field = (e.params as { missingProperty: string }).missingProperty
    return new HttpError(400, `missing required field '${field}'`, field, 'missing_field')
  }
  if (schema === 'tokenize' && e.keyword === 'anyOf' && e.instancePath === '') {
    return new HttpError(400, "missing required field 'text'", 'text', 'missing_field')
  }
  // '/prompt/0' → 'prompt[0]'; the top-level field is the param.
  const parts = e.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
  const param = parts[0] ?? null
  const where = parts.map((p, i) => (i === 0 ? p : /^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('')
  if (param && shapes[param] && parts.length >= 1) return new HttpError(400, `${param} must be ${shapes[param]}`, param, 'invalid_value')
  const message = e.keyword === 'type' ? `must be of type ${String((e.params as { type: string }).type).replace(',', ' or ')}` : e.message
  return new HttpError(400, `${where || 'body'} ${message}`, param, 'invalid_value')
}
