// The score view's token pieces: the same code as `lmp tknz-txt --json` (src/tokenizer/pieces.ts); the
// Generate view's prompt as its token texts.
export { tokenPieces, tokenTexts } from '../src/tokenizer/pieces.ts'
