import './base.css';
import './depEdit.css';
