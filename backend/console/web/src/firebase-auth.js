// The entry esbuild bundles into ../static/bundle/firebase-auth.js: only the parts of the
// official Firebase JS SDK the console's sign-in uses (signin.js imports this bundle).
// initializeAuth, not getAuth: getAuth would add the popup/redirect resolver (an iframe from
// the auth domain) and IndexedDB persistence, neither of which email/password sign-in needs.
export { initializeApp } from "firebase/app";
export {
  browserSessionPersistence,
  connectAuthEmulator,
  getIdToken,
  initializeAuth,
  onIdTokenChanged,
  signInWithEmailAndPassword,
  signOut,
} from "firebase/auth";
