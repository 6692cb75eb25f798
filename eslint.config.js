// Lint rules: neostandard (the style the code is written in: no semicolons, single quotes, two-space indent) with
// its TypeScript support. `npm run lint` must report 0 problems, warnings included; CI runs it.
// The few rules turned off or eased below are layout choices the code makes on purpose, not bugs:
// - object-property-newline, object-curly-newline, multiline-ternary: short objects and ternaries are written on
//   one line or split by meaning (rows of a table, a chain of conditions), not one property per line;
// - quotes: SQL is written in template literals whether or not it interpolates, so it can hold quotes and grow;
// - no-void: `void reply.header(...)` marks a call whose returned value is ignored on purpose.
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'coverage/**', 'node_modules/**', 'src/generated/**', 'public/**', '.tap/**', '.data/**']
  }),
  {
    rules: {
      '@stylistic/object-property-newline': 'off',
      '@stylistic/object-curly-newline': 'off',
      '@stylistic/multiline-ternary': 'off',
      '@stylistic/quotes': ['error', 'single', { avoidEscape: true, allowTemplateLiterals: true }],
      'no-void': ['error', { allowAsStatement: true }]
    }
  }
]
