// The score view's token pieces: the same code as `lmp tknz-txt --json` (src/tokenizer/pieces.ts).
export { tokenPieces } from '../src/tokenizer/pieces.ts'
