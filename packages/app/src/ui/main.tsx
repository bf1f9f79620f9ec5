/**
 * Entry point of the room app: mounts {@link App}. Built by Vite (`tools/build.ts`) and served by `npm start`.
 * @module
 */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.js';
import './styles.css';

const root = document.getElementById('root');
if (!root) throw new Error('index.html lacks #root');
createRoot(root).render(<StrictMode><App /></StrictMode>);
