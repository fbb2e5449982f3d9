/*
 * French for the modeler's own texts (palette, context pad, replace menu, error messages): the
 * community translation from the bpmn-js-i18n package (copied to vendor/ by `npm run vendor`), made
 * available to designer.js as `window.TeleradBpmnTranslations.fr`. A module script, loaded before
 * designer.js (also a module, so both run in document order after parsing).
 */
import fr from '../vendor/bpmn-js-i18n/fr.js';

window.TeleradBpmnTranslations = Object.freeze({ fr: fr });
