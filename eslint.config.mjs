// The front end's lint rules: typescript-eslint's recommended set, on src/.
import tseslint from 'typescript-eslint';

export default tseslint.config(...tseslint.configs.recommended, {
  files: ['src/**/*.ts'],
  rules: {
    '@typescript-eslint/no-unused-vars': ['error', { args: 'none' }],
    eqeqeq: 'error',
    'prefer-const': 'error'
  }
});
